/* tests/unit/test_expfmt.c - placeholder until its suite lands. */
int main(void) { return 0; }
