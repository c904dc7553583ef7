/* tests/unit/test_util.c - placeholder until its suite lands. */
int main(void) { return 0; }
