"""Start libFuzzer with a corpus seeded from the target's own examples, and
its dictionary if it has one, unless the command line names them."""

from __future__ import annotations

import hashlib
import pathlib
import sys
from collections.abc import Callable, Iterable

import atheris

HERE = pathlib.Path(__file__).parent
# The invariants the targets check are the property tests' own.
sys.path.insert(0, str(HERE.parent / "tests" / "property"))


def run(name: str, test_one_input: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Fuzz ``test_one_input``. Without corpus directories on the command
    line, new inputs go to fuzz/corpus/<name>/ (not tracked by git), which
    starts with ``seeds``; fuzz/<name>.dict is used when it exists."""
    args = list(sys.argv)
    options = [arg for arg in args[1:] if arg.startswith("-")]
    if len(options) == len(args) - 1:  # no corpus directory given
        corpus = HERE / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            path = corpus / f"seed-{hashlib.sha1(seed).hexdigest()}"
            if not path.exists():
                path.write_bytes(seed)
        args.append(str(corpus))
    dictionary = HERE / f"{name}.dict"
    if dictionary.exists() and not any(arg.startswith("-dict=") for arg in options):
        args.insert(1, f"-dict={dictionary}")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
