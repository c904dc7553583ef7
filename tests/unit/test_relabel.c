/* tests/unit/test_relabel.c - placeholder until its suite lands. */
int main(void) { return 0; }
