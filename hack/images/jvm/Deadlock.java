// The program of kd.local/jvm-app:1 (see hack/images/build_images.py): a JVM in a
// known bad state, for the jattach recipes (thread dump, heap histogram) to find.
//
// Default package on purpose: the image runs `java -cp /app Deadlock`, and the
// classes sit at /app/Deadlock.class and /app/KdPayload.class. A thread dump shows
//   - "kd-deadlock-a" and "kd-deadlock-b", deadlocked on two monitors (the JVM's
//     "Found one Java-level deadlock" section names both);
//   - "kd-lock-holder", TIMED_WAITING (sleeping) while it holds a third monitor;
// and a heap histogram (jattach <pid> inspectheap) shows ~400,000 live KdPayload
// instances, kept reachable from a static field so no GC can take them.
//
// Sized for -Xmx64m: the payload is about 10 MB of heap.

import java.util.concurrent.CountDownLatch;

public final class Deadlock {
    static final int PAYLOAD_COUNT = 400_000;

    // Static, so the payload stays reachable for the life of the JVM.
    static KdPayload[] payload;

    private static final Object LOCK_A = new Object();
    private static final Object LOCK_B = new Object();
    private static final Object LOCK_HELD = new Object();

    private Deadlock() {}

    // Both threads take their first monitor, meet at the latch, then each asks for the
    // other's: the latch makes the deadlock certain rather than a matter of timing.
    private static Thread deadlocker(String name, Object first, Object second, CountDownLatch bothHoldOne) {
        Thread t = new Thread(() -> {
            synchronized (first) {
                bothHoldOne.countDown();
                try {
                    bothHoldOne.await();
                } catch (InterruptedException e) {
                    return;
                }
                synchronized (second) {
                    System.out.println(name + ": impossible, got both monitors");
                }
            }
        }, name);
        t.setDaemon(true);
        return t;
    }

    public static void main(String[] args) throws InterruptedException {
        payload = new KdPayload[PAYLOAD_COUNT];
        for (int i = 0; i < PAYLOAD_COUNT; i++) {
            payload[i] = new KdPayload(i);
        }

        CountDownLatch bothHoldOne = new CountDownLatch(2);
        deadlocker("kd-deadlock-a", LOCK_A, LOCK_B, bothHoldOne).start();
        deadlocker("kd-deadlock-b", LOCK_B, LOCK_A, bothHoldOne).start();

        Thread holder = new Thread(() -> {
            synchronized (LOCK_HELD) {
                while (true) {
                    try {
                        Thread.sleep(60_000);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
        }, "kd-lock-holder");
        holder.setDaemon(true);
        holder.start();

        bothHoldOne.await();
        System.out.println("kd jvm-app started: " + PAYLOAD_COUNT + " KdPayload objects, threads kd-deadlock-a/kd-deadlock-b deadlocked, kd-lock-holder holding a lock");
        System.out.flush();

        // The main thread just keeps the JVM (and the payload) alive; SIGTERM ends it.
        while (true) {
            Thread.sleep(60_000);
        }
    }
}

// One live object of the histogram; a distinctive name so it is easy to grep for.
final class KdPayload {
    final long id;
    final KdPayload self;

    KdPayload(long id) {
        this.id = id;
        this.self = this;
    }
}
