/* tests/unit/test_config.c - placeholder until its suite lands. */
int main(void) { return 0; }
