/* Keeps tunless_testsupport non-empty before any shared test helper exists. */
typedef int tunless_testsupport_empty;
