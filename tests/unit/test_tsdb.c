/* tests/unit/test_tsdb.c - placeholder until its suite lands. */
int main(void) { return 0; }
