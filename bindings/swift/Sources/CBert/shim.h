/* Includes libbert's generated header, found through pkg-config's Cflags (bert.pc). */
#include <bert.h>
