#include "util/init.h"

#include <malloc.h>

#include "util/accept.h"

#define MMAP_THRESHOLD (128 * 1024) /* glibc's initial (and default) value */

int an_global_init(void)
{
	/* large buffers always mmapped, freed to the system (init.h) */
	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	return an_accept_reserve();
}
