/* ntddk.h: the WDK's header for kernel-mode drivers; in this subset it adds
 * nothing to wdm.h, which holds every name fastmutex provides. */
#ifndef FASTMUTEX_WDK_NTDDK_H
#define FASTMUTEX_WDK_NTDDK_H

#include "wdm.h"

#endif /* FASTMUTEX_WDK_NTDDK_H */
