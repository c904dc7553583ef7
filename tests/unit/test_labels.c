/* tests/unit/test_labels.c - placeholder until its suite lands. */
int main(void) { return 0; }
