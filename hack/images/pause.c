/*
 * pause: the pod sandbox's pid 1 for kd.local/pause (see build_images.py).
 *
 * It holds the pod's namespaces open and does nothing else. Being pid 1 of the
 * pod's pid namespace (when the pod shares one), it must reap orphaned children,
 * or they would stay zombies; and the kernel ignores signals pid 1 has no handler
 * for, so SIGINT/SIGTERM get explicit handlers or the runtime could only SIGKILL it.
 *
 * Built static (gcc -static -Os) so the image needs no libc.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    /* _exit, not exit: only async-signal-safe calls in a handler. */
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    /* One SIGCHLD may stand for several exited children: reap until none is left. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        puts("pause (kubedebug.ephemeral kd.local/pause)");
        return 0;
    }
    if (getpid() != 1) {
        /* Still works, but nothing gets reparented to us: say so, as upstream pause does. */
        fputs("pause: warning: not running as pid 1\n", stderr);
    }
    if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0 ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
    /* not reached */
    return 42;
}
