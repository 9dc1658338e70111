"""Option parsing: scenario defaults, overrides, and one-line errors with exit code 2."""

import pytest

from loadtest import cli, scenarios
from native.ports import PORTS


def parse_ok(*argv):
    return cli.parse(list(argv))


def parse_error(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.parse(list(argv))
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("loadtest: error: "), err  # one line, no usage block
    return err


def test_default_scenario_is_steady():
    args, plan = parse_ok()
    assert args.scenario == "steady" and plan.rate == 10 and plan.count == 300
    assert (
        args.url == f"http://127.0.0.1:{PORTS['app']}" and args.prometheus == f"http://127.0.0.1:{PORTS['prometheus']}"
    )
    assert args.wait and args.json is None and args.concurrency == 4


def test_burst_is_the_guides_scenario_2():
    _, plan = parse_ok("burst")
    assert plan.count == 20 and plan.rate is None and plan.tasks == (("process_task", 10.0),)


def test_options_override_the_scenario():
    args, plan = parse_ok(
        "burst",
        "--timeout",
        "1",
        "--count",
        "7",
        "--fail-rate",
        "0.5",
        "--memory-mb",
        "3",
        "--wait-timeout",
        "9",
        "--no-wait",
        "--concurrency",
        "2",
    )
    assert plan.tasks == (("process_task", 1.0),) and plan.count == 7
    assert plan.fail_rate == 0.5 and plan.memory_mb == 3 and plan.wait_timeout == 9
    assert not args.wait and args.concurrency == 2


@pytest.mark.parametrize(
    "argv, count, rate",
    [
        (["steady", "--rate", "50", "--duration", "6"], 300, 50),
        (["steady", "--count", "40"], 40, 10),  # the scenario's rate, for 4 s
        (["steady", "--duration", "2"], 20, 10),
        (["steady", "--count", "30", "--duration", "3"], 30, 10),  # rate follows
        (["burst", "--duration", "10"], 20, 2),  # the guide's 20 tasks spread over 10 s
        (["burst", "--rate", "4"], 20, 4),
    ],
)
def test_rate_duration_count_combine(argv, count, rate):
    _, plan = parse_ok(*argv)
    assert plan.count == count and plan.rate == pytest.approx(rate)


def test_mixed_timeout_applies_to_both_tasks():
    _, plan = parse_ok("mixed", "--timeout", "0.3")
    assert plan.tasks == (("process_task", 0.3), ("process_data", 0.3))


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--rate", "-5"], "--rate"),
        (["--rate", "0"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--duration", "-1"], "--duration"),
        (["--count", "0"], "--count"),
        (["--count", "2.5"], "--count"),
        (["--count", str(scenarios.MAX_TASKS_PER_RUN + 1)], "--count"),
        (["--concurrency", "0"], "--concurrency"),
        (["--timeout", "-1"], "--timeout"),
        (["--timeout", "601"], "--timeout"),
        (["--fail-rate", "1.5"], "--fail-rate"),
        (["--memory-mb", "-1"], "--memory-mb"),
        (["--wait-timeout", "-1"], "--wait-timeout"),
        (["--url", "localhost:8080"], "--url"),
        (["--prometheus", "ftp://x"], "--prometheus"),
        (["nope"], "nope"),
        (["--bogus"], "--bogus"),
        (["--rate", "1", "--duration", "1", "--count", "1"], "--count"),
        (["--rate", "0.01", "--duration", "1"], "--rate"),
        (["--rate", "1000", "--duration", "1000"], "--rate"),
        (["--json", "/nonexistent-dir/x.json"], "--json"),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_them(capsys, argv, named):
    err = parse_error(capsys, *argv)
    assert named in err


def test_unknown_scenario_lists_the_known_ones(capsys):
    err = parse_error(capsys, "nope")
    assert all(name in err for name in scenarios.SCENARIOS)
