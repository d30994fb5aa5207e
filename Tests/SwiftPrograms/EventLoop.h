// C declarations EventLoop.swift needs (swiftc -import-objc-header EventLoop.h).
#include <pthread.h>
#include <sys/epoll.h>
int pthread_setname_np(pthread_t thread, const char *name);
