""".env has two readers, and they agree: native mode reads it with python-dotenv (native/env.py), the
Docker path of `make up` with a POSIX function of scripts/compose_stack.sh (that path has no Python).
Both get the files of dotenv_cases/ and must find the assignments listed here: `export KEY=value`,
quotes, comments, blank lines, `=` inside values, spaces around `=`, empty values, lines neither
takes. Both `make up` paths then agree on which keys an existing .env has, and the Docker path's
URL table shows the ports python-dotenv reads.
"""

import subprocess
from pathlib import Path

import pytest

from native import dotenv
from native.env import read_dotenv
from tests import compose_cli

REPO = compose_cli.REPO
SCRIPT = REPO / "scripts" / "compose_stack.sh"
CASES = Path(__file__).parent / "dotenv_cases"
EXPECTED = {
    "plain.env": {"RMQ_USER": "celery", "RMQ_PASSWORD": "s3cret-Value_1", "HOST_PORT_APP": "18080"},
    "export.env": {
        "RMQ_PASSWORD": "from-export",
        "TABBED": "after-a-tab",
        "INDENTED": "yes",
        "exported": "not-a-prefix",
        "export": "a-key-named-export",
    },
    "quotes.env": {
        "SINGLE": "two words",
        "DOUBLE": "two words",
        "EMPTY_DOUBLE": "",
        "EMPTY_SINGLE": "",
        "DOUBLE_IN_SINGLE": 'say "hi"',
        "SINGLE_IN_DOUBLE": "it's",
        "HASH_IN_DOUBLE": "a # b",
        "HASH_IN_SINGLE": "a # b",
        "COMMENT_AFTER_QUOTE": "value",
        "SPACES_INSIDE": "  kept  ",
    },
    "comments.env": {
        "TRAILING": "value",
        "NOT_A_COMMENT": "value#kept",
        "ONLY_A_COMMENT": "",
        "HASH_FIRST": "#kept-too",
    },
    "blank_lines.env": {"FIRST": "1", "SECOND": "2", "THIRD": "3"},
    "crlf.env": {"WINDOWS": "line-ending", "QUOTED": "crlf", "LAST": "3"},
    "equals.env": {
        "RMQ_URL": "amqp://user:pass@127.0.0.1:5672//?heartbeat=30",
        "QUOTED_EQUALS": "x=y",
        "BASE64_PADDING": "YWJjZA==",
    },
    "spaces.env": {
        "AROUND": "value",
        "BEFORE": "value",
        "AFTER": "value",
        "TRAILING_SPACES": "value",
        "QUOTED_AFTER_SPACE": "quoted value",
    },
    # NO_EQUALS assigns nothing; of two assignments the last wins.
    "empty.env": {"EMPTY": "", "EMPTY_WITH_SPACES": "", "DUPLICATE": "second"},
    # Text after a closing quote, an unterminated quote and a line without `=` assign nothing.
    "invalid.env": {"GOOD": "1", "ALSO_GOOD": "2"},
}


def sh(*args, path, **env):
    environ = {"PATH": str(path), **{k: str(v) for k, v in env.items()}}
    result = subprocess.run(
        ["sh", *map(str, args)], env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def shell_reader(path, bare_path, script=SCRIPT):
    """What scripts/compose_stack.sh reads from `path`; the last assignment of a key wins, as its
    `setting` takes it."""
    values = {}
    for line in sh(script, "dotenv", path, path=bare_path).splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def test_every_case_file_has_its_expected_values():
    assert {p.name for p in CASES.glob("*.env")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_python_and_the_shell_read_the_same(case, bare_path):
    path = CASES / case
    assert read_dotenv(path) == EXPECTED[case]
    assert shell_reader(path, bare_path) == EXPECTED[case]


def test_env_example_is_plain_lines_both_read_alike(bare_path):
    # Both ensure() copy .env.example line by line, keyed by KEY_LINE / the shell's KEY=* pattern.
    example = REPO / ".env.example"
    plain = {m.group(1): m.group(2) for line in example.read_text().splitlines() if (m := dotenv.KEY_LINE.match(line))}
    assert read_dotenv(example) == plain == shell_reader(example, bare_path)


@pytest.fixture
def checkout(tmp_path):
    """What `scripts/compose_stack.sh env` and native/dotenv.py read: the script and .env.example."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / SCRIPT.name).write_text(SCRIPT.read_text())
    (root / ".env.example").write_text((REPO / ".env.example").read_text())
    return root


OLD_ENV = (
    "export RMQ_USER=olduser\n"
    'RMQ_PASSWORD = "old password"\n'
    "GRAFANA_ADMIN_PASSWORD='old-grafana' # kept\n"
    "  export FLASK_SECRET_KEY=old-flask\n"
)


def complete_with_shell(root, bare_path):
    sh(root / "scripts" / SCRIPT.name, "env", path=bare_path)


def complete_with_python(root, bare_path):
    dotenv.ensure(lambda message: None, example=root / ".env.example", dest=root / ".env")


@pytest.mark.parametrize("complete", [complete_with_shell, complete_with_python], ids=["sh", "python"])
def test_both_paths_see_export_and_quoted_keys_as_present(checkout, bare_path, complete):
    env_file = checkout / ".env"
    env_file.write_text(OLD_ENV)
    complete(checkout, bare_path)
    text = env_file.read_text()
    assert text.startswith(OLD_ENV)
    added = text[len(OLD_ENV) :]
    for key in ("RMQ_USER", "RMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FLASK_SECRET_KEY"):
        assert f"\n{key}=" not in added, f"{key} is in .env already, yet was added again"
    values = read_dotenv(env_file)
    assert values == shell_reader(env_file, bare_path)
    assert set(values) == set(read_dotenv(checkout / ".env.example"))
    assert (values["RMQ_USER"], values["RMQ_PASSWORD"], values["GRAFANA_ADMIN_PASSWORD"]) == (
        "olduser",
        "old password",
        "old-grafana",
    )


def test_the_docker_paths_url_table_uses_the_ports_python_reads(tmp_path, bare_path):
    env_file = tmp_path / ".env"
    env_file.write_text('export HOST_PORT_APP="18081"\nHOST_PORT_FLOWER = 15556 # moved\n')
    values = read_dotenv(env_file)
    shown = sh(SCRIPT, "urls", path=bare_path, ENV_FILE=env_file, DRY_RUN=1)
    assert f"http://localhost:{values['HOST_PORT_APP']}\n" in shown
    assert f"http://localhost:{values['HOST_PORT_FLOWER']}\n" in shown
