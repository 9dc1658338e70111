"""The publisher, a separate process as a real producer is: `python -m bench.publish --kind add --count N`.

Talks JSON lines on stdout: {"ready": true} once connected; with --wait-go it then waits for a line on
stdin, so that the orchestrator can sample every process's CPU just before the first publish;
{"t0": ...} just before the first publish; at the end {"t0", "t_end", "published", "cpu"} where cpu is
this process's CPU seconds spent publishing (import and connection excluded).
"""

import argparse
import json
import resource
import signal
import sys
import time

from bench import tasks

_stop = False


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def say(**fields):
    print(json.dumps(fields), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.publish")
    p.add_argument("--kind", choices=["add", "cpu10", "sleep", "named", "maybe_fail"], default="add")
    p.add_argument("--seconds", type=float, default=10.0, help="sleep: how long each task sleeps")
    p.add_argument("--count", type=int, default=0, help="tasks to publish (0: until --duration)")
    p.add_argument("--rate", type=float, default=0, help="tasks per second (0: as fast as possible)")
    p.add_argument("--duration", type=float, default=0, help="seconds to publish for (0: until --count)")
    p.add_argument("--fail-every", type=int, default=0, help="maybe_fail: every Nth task fails (1: all)")
    p.add_argument("--wait-go", action="store_true")
    args = p.parse_args(argv)

    def stop(*_):
        global _stop
        _stop = True

    signal.signal(signal.SIGTERM, stop)

    if args.kind == "add":

        def send(i, prod):
            tasks.add.apply_async((i, i), producer=prod)
    elif args.kind == "cpu10":

        def send(i, prod):
            tasks.cpu10.apply_async((), producer=prod)
    elif args.kind == "sleep":

        def send(i, prod):
            tasks.sleep.apply_async((args.seconds,), producer=prod)
    elif args.kind == "named":

        def send(i, prod):
            tasks.NAMED[i % len(tasks.NAMED)].apply_async((i, i), producer=prod)
    else:

        def send(i, prod):
            fail = args.fail_every > 0 and i % args.fail_every == 0
            tasks.maybe_fail.apply_async((fail,), producer=prod)

    with tasks.app.producer_or_acquire() as prod:
        prod.connection.ensure_connection(max_retries=3)
        say(ready=True)
        if args.wait_go:
            sys.stdin.readline()
        cpu0 = _cpu()
        t0 = time.time()
        say(t0=t0)
        i = 0
        while not _stop:
            if args.count and i >= args.count:
                break
            now = time.time()
            if args.duration and now - t0 >= args.duration:
                break
            if args.rate:
                due = int((now - t0) * args.rate) + 1  # tasks that should be out by now
                if i >= due:
                    time.sleep(min(0.002, (i + 1) / args.rate - (now - t0)))
                    continue
                batch = due - i
            else:
                batch = 100
            for _ in range(batch if not args.count else min(batch, args.count - i)):
                send(i, prod)
                i += 1
        say(t0=t0, t_end=time.time(), published=i, cpu=round(_cpu() - cpu0, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
