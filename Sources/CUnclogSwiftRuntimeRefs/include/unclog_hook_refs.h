// The Swift runtime and Dispatch, referenced directly (resolved by the linker), for programs that
// link the UnclogRecorder library: works with -static-stdlib, where dlsym finds nothing.
#ifndef UNCLOG_HOOK_REFS_H
#define UNCLOG_HOOK_REFS_H
#include "unclog_recorder.h"
/// Fills `rt` with the linked runtime's hook variable and functions.
void unclog_runtime_linked(unclog_runtime *rt);
#endif
