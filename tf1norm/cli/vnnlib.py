"""``tf1norm verify NET PROP.vnnlib``: a VNN-LIB property, VNN-COMP's result file.

The verdict is printed (status, deciding step, time, and for ``sat`` the
counterexample) and, with ``--results FILE``, written in the competition's
format::

    sat
    ((X_0 0.6)
     (X_1 -0.25)
     (Y_0 -0.0183)
     (Y_1 0.0217))

or a single line ``unsat``, ``timeout`` or ``error``. A tqdm bar on stderr
(terminals only) shows the elapsed share of ``--timeout`` and the current
step. Ctrl-C stops the search; nothing is written and the exit status is 130.
"""

import time

from tf1norm.cli.errors import CommandError

RESULTS = {"proved": "unsat", "falsified": "sat", "unknown": "timeout"}
STATUS_CODES = {"proved": 0, "falsified": 3, "unknown": 4}


def result_text(verdict):
    """The VNN-COMP result file's text for a property verdict."""
    status = RESULTS[verdict.status]
    if status != "sat":
        return status + "\n"
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(verdict.counterexample)]
    pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(verdict.counterexample_output)]
    return "sat\n(" + "\n ".join(pairs) + ")\n"


def write_results(path, text):
    if path is None:
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise CommandError(f"cannot write the results file {path!r}: {error}") from None


def _progress_bar(timeout):
    """``(callback, bar)``: the callback moves the bar to the elapsed seconds."""
    from tqdm import tqdm

    bar = tqdm(
        total=timeout,
        unit="s",
        desc="verify",
        disable=None,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} s {postfix}"
        if timeout
        else "{desc}: {n:.1f} s {postfix}",
    )
    start = time.monotonic()

    def report(text):
        bar.n = round(time.monotonic() - start, 1)
        bar.set_postfix_str(text, refresh=True)

    return report, bar


def verify_vnnlib(args, out):
    """Load the network and the property, verify, print and write the result."""
    from tf1norm import bounds
    from tf1norm.cli import bounds as cli_bounds

    try:
        network = cli_bounds.load_network(args.model, args.input, args.output)
        prop = bounds.from_vnnlib(args.property)
        report, bar = _progress_bar(args.timeout)
        try:
            verdict = bounds.verify(
                network, prop, time_limit=args.timeout, method=args.method, progress=report
            )
        finally:
            bar.close()
    except (CommandError, ValueError) as error:
        write_results(args.results, "error\n")
        raise CommandError(str(error)) from None
    if verdict.method == "interrupted":
        raise KeyboardInterrupt
    write_results(args.results, result_text(verdict))
    print(
        f"{RESULTS[verdict.status]} ({verdict.status} by {verdict.method}, "
        f"{verdict.seconds:.3g} s)",
        file=out,
    )
    if verdict.counterexample is not None:
        print(result_text(verdict).split("\n", 1)[1].rstrip(), file=out)
    return STATUS_CODES[verdict.status]
