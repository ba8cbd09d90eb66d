/* test_grow.c — array_grow (src/grow.c): the one growing-array idiom. */
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"
#include "testlib.h"

TEST(grows_from_first_and_doubles)
{
	int *v = NULL;
	size_t cap = 0;
	v = array_grow(v, &cap, 1, sizeof *v, 8);
	CHECK(v != NULL);
	CHECK_EQ_INT(cap, 8);
	int *same = array_grow(v, &cap, 8, sizeof *v, 8);
	CHECK(same == v); /* room enough: the array itself, untouched */
	CHECK_EQ_INT(cap, 8);
	v = array_grow(v, &cap, 9, sizeof *v, 8);
	CHECK_EQ_INT(cap, 16);
	v = array_grow(v, &cap, 100, sizeof *v, 8);
	CHECK_EQ_INT(cap, 128);
	for (int i = 0; i < 100; i++)
		v[i] = i; /* the room is really there (ASan would say) */
	free(v);
}

TEST(overflow_fails_and_changes_nothing)
{
	char *v = NULL;
	size_t cap = 0;
	v = array_grow(v, &cap, 4, 1, 4);
	REQUIRE(v != NULL);
	size_t before = cap;
	CHECK(array_grow(v, &cap, SIZE_MAX, 1, 4) == NULL);
	CHECK(array_grow(v, &cap, SIZE_MAX / 4, 16, 4) == NULL);
	CHECK_EQ_INT(cap, before);
	free(v);
}

TEST_MAIN(grows_from_first_and_doubles, overflow_fails_and_changes_nothing)
