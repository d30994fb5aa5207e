// Direct references to the Swift Concurrency runtime and Dispatch (see the header). Only the
// addresses are taken, so the prototypes are deliberately minimal.
#include "unclog_hook_refs.h"

extern void *swift_task_enqueueGlobal_hook;
extern void swift_job_run(void);
extern void swift_task_getCurrent(void);
extern void dispatch_async_f(void);
extern void dispatch_queue_create(void);
extern void dispatch_queue_attr_make_with_qos_class(void);
extern void dispatch_queue_set_width(void);
extern char _dispatch_queue_attr_concurrent;
extern void *swift_task_enqueueMainExecutor_hook;
extern void swift_task_getMainExecutor(void);
extern char _dispatch_main_q;
extern void dispatch_after_f(void);
extern void dispatch_time(void);

void unclog_runtime_linked(unclog_runtime *rt) {
    rt->enqueue_global_hook = &swift_task_enqueueGlobal_hook;
    rt->job_run = (void *)&swift_job_run;
    rt->swift_task_getCurrent = (void *)&swift_task_getCurrent;
    rt->dispatch_async_f = (void *)&dispatch_async_f;
    rt->dispatch_queue_create = (void *)&dispatch_queue_create;
    rt->dispatch_queue_attr_make_with_qos_class = (void *)&dispatch_queue_attr_make_with_qos_class;
    rt->dispatch_queue_set_width = (void *)&dispatch_queue_set_width;
    rt->dispatch_queue_attr_concurrent = &_dispatch_queue_attr_concurrent;
    rt->enqueue_main_hook = &swift_task_enqueueMainExecutor_hook;
    rt->get_main_executor = (void *)&swift_task_getMainExecutor;
    rt->dispatch_main_q = &_dispatch_main_q;
    rt->dispatch_after_f = (void *)&dispatch_after_f;
    rt->dispatch_time = (void *)&dispatch_time;
}
