"""The ``labkit`` command: listen, trigger, deliveries, redeliver, doctor, lab, progress, student, images, stack."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.errors import ClassroomError, LabkitError
from labkit.paths import setting


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise LabkitError(f"--set expects KEY=VALUE, got {pair!r}.")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            out[key.replace("-", "_")] = value
    return out


_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&#\s]+")


def redact(url: str) -> str:
    """A URL as it may be printed: a ``?token=`` value shown as ``***``."""
    return _TOKEN_IN_URL.sub(r"\1***", url)


def cmd_listen(args: argparse.Namespace) -> int:
    import uvicorn

    from labkit.webhooks import signing
    from labkit.webhooks.receiver import Receiver, docker_gateway, secret_from_env
    from labkit.webhooks.serving import MAX_CONCURRENCY, bind, with_header_deadline

    secret = args.secret or secret_from_env()
    tokens: dict[str, str | list[str]] = {}
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise LabkitError(
                f"Cannot read --token-file {args.token_file}: {exc.strerror}."
            ) from None
        tokens = {source: token for source in signing.TOKEN_SOURCES}
    rx = Receiver(
        secret=secret,
        secrets=tokens,
        host=args.host,
        port=args.port,
        db=args.db,
        max_body=args.max_body,
        sync=args.sync,
        for_containers=args.for_containers,
        open=args.open or (),
    )
    try:
        sockets = [bind(args.host, args.port)]
        also = ""
        if args.for_containers:
            gateway = docker_gateway()
            if gateway is None:
                raise LabkitError("--for-containers: no Docker bridge found (is Docker running?).")
            sockets.append(bind(gateway, args.port))
            also = (
                f"  containers: http://host.docker.internal:{args.port} (bridge gateway {gateway})"
            )
    except OSError as exc:
        raise LabkitError(
            f"Cannot listen on port {args.port} ({exc.strerror}): another program "
            "uses it; choose another with --port."
        ) from None
    print(
        f"labkit receiver on http://{args.host}:{args.port}{also}  log: {args.db}  "
        f"secret: {'set' if secret else 'NOT set (deliveries are not verified)'}",
        flush=True,
    )
    config = uvicorn.Config(
        rx.app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop=args.loop,
        http=with_header_deadline(args.http),
        backlog=2048,
        limit_concurrency=MAX_CONCURRENCY,
    )
    uvicorn.Server(config).run(sockets=sockets)
    rx.dispatcher.stop()
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    from labkit.webhooks import events, signing
    from labkit.webhooks.sender import send

    options = _options(args.set or [])
    for name in ("repo", "ref", "tag", "action"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.delivery_id:
        # Standard Webhooks call the delivery id the message id (webhook-id).
        key = "msg_id" if args.kind.startswith("standard.") else "delivery_id"
        options[key] = args.delivery_id
    event = events.build(args.kind, **options)
    secret = args.secret or setting("LABKIT_WEBHOOK_SECRET") or None
    if args.token:
        secret = args.token
    elif secret and event.source in signing.TOKEN_SOURCES:
        # The secret `labkit listen` was given serves every source: a token source presents
        # the token derived from it, never the secret itself.
        secret = signing.token_for(secret)
    outcome = send(
        event,
        args.to,
        secret=secret,
        retries=args.retries,
        backoff=args.backoff,
        timeout=args.timeout,
        allow_private=args.allow_private or None,
    )
    for a in outcome.attempts:
        print(
            f"attempt {a.number}: {a.status if a.status is not None else a.error} "
            f"({a.duration_ms:.0f} ms)"
        )
    # Only GitHub and Standard Webhooks put a delivery id on the wire; for the others it is
    # labkit's own bookkeeping and would only mislead.
    shown = f" {event.delivery_id}" if event.source in ("github", "standard") else ""
    print(
        f"{event.kind}{shown} -> {redact(outcome.url)}: {'delivered' if outcome.ok else 'FAILED'}"
    )
    if outcome.response and not args.quiet:
        print(outcome.response)
    return 0 if outcome.ok else 1


def cmd_deliveries(args: argparse.Namespace) -> int:
    from labkit.webhooks.sender import default_log

    # `labkit deliveries | head` should end quietly; only this listing command does that, since
    # a server must never die of SIGPIPE when a client hangs up.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    rows = default_log().recent(args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No deliveries sent yet: try `labkit trigger github.ping --to URL`.")
    for r in rows:
        status = r["status"] if r["status"] is not None else r["error"]
        print(
            f"{r['sent_at']}  {r['delivery_id']}  {r['kind']:<22} #{r['attempt']}  {status}  "
            f"{redact(r['url'])}"
        )
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    from labkit.webhooks.sender import redeliver

    secret = args.secret or setting("LABKIT_WEBHOOK_SECRET") or None
    outcome = redeliver(
        args.delivery_id,
        to=args.to,
        secret=secret,
        retries=args.retries,
        allow_private=args.allow_private or None,
    )
    print(
        f"{outcome.kind} {outcome.delivery_id} -> {redact(outcome.url)}: "
        f"{'delivered' if outcome.ok else 'FAILED'} (HTTP {outcome.status})"
    )
    return 0 if outcome.ok else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from labkit.teaching.doctor import doctor

    report = doctor()
    print(report)
    return 0 if report.ok else 1


def cmd_lab(args: argparse.Namespace) -> int:
    from labkit.teaching.lab import prepare_workspace, reset_lesson, run_lab

    if args.reset:
        return reset_lesson(args.reset, yes=args.yes)
    if args.prepare_only:
        prepare_workspace()
        return 0
    return run_lab(port=args.port, open_browser=not args.no_browser, solutions=args.solutions)


def cmd_progress(args: argparse.Namespace) -> int:
    from labkit.teaching import record
    from labkit.teaching.exercises import ids

    progress = record.summarise(ids(), record.attempts())
    if args.html:
        Path(args.html).write_text(record.html_report(progress, who=args.name or ""))
        print(f"wrote {args.html}")
    else:
        print(record.table(progress))
        print(f"(from {record.path()})")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from labkit.runtime import images

    if args.action == "build":
        # The bar (or, in a log, plain lines) ends with how many images are ready.
        images.build(args.names or None, force=args.force, progress=True)
    elif args.action == "list":
        for image in images.list_images():
            state = (
                f"{image.id.split(':')[-1][:12]}  {image.size_mb:>6.0f} MB"
                if image.present
                else "not built: run `labkit images build`"
            )
            print(f"{image.tag:<28} {state}")
    elif args.action == "save":
        images.save(args.path, args.names or None)
    else:
        images.load(args.path)
    return 0


def cmd_stack(args: argparse.Namespace) -> int:
    from labkit.runtime.compose import Stack

    stack = Stack(args.name)
    if args.action == "up":
        # With --wait, a bar (or, in a log, one line per service) until every one is healthy.
        stack.up(wait=args.wait, timeout=args.timeout, progress=True)
        print(stack.status())
    elif args.action == "ps":
        print(json.dumps(stack.ps(), indent=2) if args.json else stack.status())
    elif args.action == "logs":
        print(stack.logs(args.service, tail=args.tail))
    else:
        stack.down(volumes=not args.keep_volumes)
        print(f"{args.name}: down")
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    from labkit.teaching.lab import notebooks_dir
    from labkit.teaching.student import make_student_editions

    editions = make_student_editions(args.source or notebooks_dir(), args.out_dir)
    for edition in editions:
        print(edition)
    print(f"Open them as they are with: LABKIT_NOTEBOOKS={args.out_dir} labkit lab --solutions")
    return 0


def cmd_classroom(args: argparse.Namespace) -> int:
    from labkit.classroom import hub

    if args.action == "up":
        names: list[str] = []
        if args.names:
            names = Path(args.names).read_text().splitlines()
        learners = hub.learner_names(args.learners, names)
        hub.up(
            learners,
            spawner=args.spawner,
            port=args.port,
            public=args.public,
            mem=args.mem,
            cpus=args.cpus,
        )
    elif args.action == "status":
        print(hub.status())
    elif args.action == "password":
        secret = hub.folder() / "workshop-password"
        if not secret.exists():
            raise ClassroomError("No classroom yet: `labkit classroom up --learners N` first.")
        print(secret.read_text().strip())
    else:
        hub.down(forget_work=args.forget_work)
        print("classroom: down")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labkit", description="A hands-on lab kit for webhooks and services in Docker."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("listen", help="run the webhook receiver")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--for-containers",
        action="store_true",
        help="also listen on the Docker bridge gateway, where containers reach this "
        "machine as host.docker.internal (never on 0.0.0.0)",
    )
    s.add_argument(
        "--secret",
        help="verification secret (default: $LABKIT_WEBHOOK_SECRET); "
        "token sources must present the token derived from it (labkit trigger "
        "does), unless --token-file says otherwise",
    )
    s.add_argument(
        "--token-file",
        metavar="FILE",
        help="the token Docker Hub, registry, Alertmanager and engine senders present, "
        "read from FILE (for example a stack's webhook_token)",
    )
    s.add_argument(
        "--open",
        action="append",
        metavar="SOURCE",
        help="with a secret: accept this source unverified all the same (repeatable)",
    )
    s.add_argument("--db", default="deliveries.db", help="SQLite delivery log")
    s.add_argument(
        "--sync",
        choices=("normal", "full"),
        default="normal",
        help="normal: an acknowledged delivery survives a killed receiver; full: "
        "also power loss (an fsync per commit, slower)",
    )
    s.add_argument("--max-body", type=int, default=25 * 1024 * 1024)
    s.add_argument("--loop", default="auto", help="asyncio, uvloop or auto")
    s.add_argument("--http", default="auto", help="h11, httptools or auto")
    s.set_defaults(func=cmd_listen)

    s = sub.add_parser("trigger", help="send one event of the catalog (e.g. github.push)")
    s.add_argument(
        "kind", help="SOURCE.EVENT, e.g. github.push, dockerhub.push, alertmanager.firing"
    )
    s.add_argument("--to", required=True, help="receiver URL (base or full hook URL)")
    s.add_argument(
        "--secret",
        help="the receiver's secret, as given to `labkit listen` "
        "(default: $LABKIT_WEBHOOK_SECRET); token sources send the token derived "
        "from it",
    )
    s.add_argument(
        "--token",
        help="for a token source (dockerhub, registry, alertmanager, "
        "engine): the token to present, as it is",
    )
    s.add_argument("--repo")
    s.add_argument("--ref")
    s.add_argument("--tag")
    s.add_argument("--action")
    s.add_argument("--delivery-id")
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other builder option (JSON values allowed)",
    )
    s.add_argument("--retries", type=int, default=4)
    s.add_argument("--backoff", type=float, default=0.5, help="first backoff in seconds")
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--allow-private", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_trigger)

    s = sub.add_parser("deliveries", help="list sent deliveries and their attempts")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_deliveries)

    s = sub.add_parser("redeliver", help="send a logged delivery again, same delivery id")
    s.add_argument("delivery_id")
    s.add_argument("--to")
    s.add_argument("--secret")
    s.add_argument("--retries", type=int, default=4)
    s.add_argument("--allow-private", action="store_true")
    s.set_defaults(func=cmd_redeliver)

    s = sub.add_parser("doctor", help="preflight check for a lesson or a workshop")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("lab", help="open JupyterLab on your workspace of the lessons")
    s.add_argument("--port", type=int, default=8888)
    s.add_argument("--no-browser", action="store_true")
    s.add_argument(
        "--solutions", action="store_true", help="open the solution editions instead (instructors)"
    )
    s.add_argument(
        "--reset", metavar="NN", help="put lesson NN back to a fresh copy (yours is kept)"
    )
    s.add_argument("--yes", action="store_true", help="with --reset: do not ask")
    s.add_argument(
        "--prepare-only",
        action="store_true",
        help="create or update the workspace, then exit (Binder, devcontainers)",
    )
    s.set_defaults(func=cmd_lab)

    s = sub.add_parser("progress", help="your exercises per lesson: done, tried, not started")
    s.add_argument("--html", metavar="FILE", help="write a one-page report to hand in")
    s.add_argument("--name", help="your name, for the report's title")
    s.set_defaults(func=cmd_progress)

    s = sub.add_parser("student", help="write student editions of the lessons (answers removed)")
    s.add_argument("out_dir", help="folder for the student copies (created if missing)")
    s.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        help="the lessons to copy (default: the kit's notebooks folder)",
    )
    s.set_defaults(func=cmd_student)

    s = sub.add_parser("images", help="build, list, save or load the lab's images (no pulls)")
    images_sub = s.add_subparsers(dest="action", required=True)
    i = images_sub.add_parser("build", help="build every image offline (cached by recipe hash)")
    i.add_argument("names", nargs="*", help="only these (and the images they start from)")
    i.add_argument("--force", action="store_true", help="rebuild even when up to date")
    images_sub.add_parser("list", help="the lab images and whether they are built")
    i = images_sub.add_parser("save", help="write the images to one tarball (.gz compresses)")
    i.add_argument("path")
    i.add_argument("names", nargs="*")
    i = images_sub.add_parser("load", help="load a tarball written by `labkit images save`")
    i.add_argument("path")
    s.set_defaults(func=cmd_images)

    s = sub.add_parser("stack", help="start, inspect or stop a Compose stack of compose/")
    stack_sub = s.add_subparsers(dest="action", required=True)
    t = stack_sub.add_parser("up", help="start the stack")
    t.add_argument("name")
    t.add_argument("--wait", action="store_true", help="return once every service is healthy")
    t.add_argument("--timeout", type=float, default=300.0)
    t = stack_sub.add_parser("ps", help="services, state, health and ports")
    t.add_argument("name")
    t.add_argument("--json", action="store_true")
    t = stack_sub.add_parser("logs", help="the last log lines of every container")
    t.add_argument("name")
    t.add_argument("service", nargs="?")
    t.add_argument("--tail", type=int, default=20)
    t = stack_sub.add_parser("down", help="stop and remove the stack (and its volumes)")
    t.add_argument("name")
    t.add_argument("--keep-volumes", action="store_true")
    s.set_defaults(func=cmd_stack)

    s = sub.add_parser("classroom", help="a workshop hub on this machine (JupyterHub)")
    room_sub = s.add_subparsers(dest="action", required=True)
    t = room_sub.add_parser("up", help="start the hub and the learners' accounts")
    t.add_argument("--learners", type=int, default=0, help="learner01 ... learnerNN")
    t.add_argument("--names", metavar="FILE", help="one learner's name per line instead")
    t.add_argument("--spawner", choices=("docker", "local"), default="docker")
    t.add_argument("--port", type=int, default=8000)
    t.add_argument("--public", action="store_true", help="listen on every interface")
    t.add_argument("--mem", default="1G", help="memory limit per learner (docker)")
    t.add_argument("--cpus", type=float, default=1.0, help="CPU limit per learner (docker)")
    room_sub.add_parser("status", help="where the hub is and whose servers run")
    room_sub.add_parser("password", help="print the workshop password learners sign in with")
    t = room_sub.add_parser("down", help="stop everything the classroom started")
    t.add_argument(
        "--forget-work", action="store_true", help="also remove every learner's work volume"
    )
    s.set_defaults(func=cmd_classroom)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
