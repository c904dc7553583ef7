/* tests/unit/test_http.c - placeholder until its suite lands. */
int main(void) { return 0; }
