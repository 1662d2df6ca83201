"""Read VNN-LIB properties: input boxes and an unsafe set that is a union of polytopes.

A VNN-LIB file (the property format of VNN-COMP) declares the network's
inputs ``X_0 … X_{n−1}`` and outputs ``Y_0 … Y_{m−1}`` and asserts
constraints whose conjunction describes a *counterexample*: the property
holds when no input satisfying them exists. The subset read here, the one
the competition's benchmarks use::

    ; comments
    (declare-const X_0 Real)            ... one per input, then
    (declare-const Y_0 Real)            ... one per output
    (assert (<= X_0 0.6))               input bounds (>= too)
    (assert (>= X_0 -0.3))
    (assert (<= Y_0 Y_1))               a linear inequality over Y
    (assert (or (and (<= Y_3 Y_0) (<= Y_3 Y_1)) (and (<= Y_4 Y_0))))
    (assert (or (and (<= X_0 1) (>= X_0 0) ...) (and ...)))   several input boxes

Terms are numbers, variables, ``(+ t …)``, ``(- t)``, ``(- t t …)`` and
``(* c t)`` with a constant ``c``. The strict ``<`` and ``>`` are read as
``<=`` and ``>=`` (the competition does the same: over the reals the
difference has measure zero). Every assert is brought into disjunctive
normal form and the conjunction of all asserts expanded; each resulting term
must bound every input from both sides with single-input constraints and
may constrain the outputs by linear inequalities. Terms with the same input
box are grouped into one ``Case``:

    counterexample  ⇔  x ∈ [case.lower, case.upper] and A·y <= b for some
                       case and some polytope (A, b) of that case.

Units are whatever the network file uses: for the VNN-COMP ONNX files of
ACAS Xu the inputs are the *normalized* ones (the ONNX graph itself holds
no normalization beyond its constant Sub/Div nodes).
"""

import itertools
import re

import numpy as np

MAX_TERMS = 100_000
_VARIABLE = re.compile(r"^([XY])_(\d+)$")
_COMPARISONS = {"<=": 1.0, "<": 1.0, ">=": -1.0, ">": -1.0}


class VnnLibError(ValueError):
    """An unreadable or unsupported VNN-LIB file; the message names the line and token."""


class Token(str):
    """A token with the line it came from."""

    def __new__(cls, text, line):
        token = super().__new__(cls, text)
        token.line = line
        return token


class Polytope:
    """``{y : A·y <= b}``: one part of the unsafe set.

    Attributes:
      A: float64 ``[rows, outputs]`` (zero rows: every output is unsafe).
      b: float64 ``[rows]``.
    """

    def __init__(self, A, b):
        self.A, self.b = np.asarray(A, np.float64), np.asarray(b, np.float64)

    def slack(self, y):
        """``A·y − b`` per row (per point for a batch ``[N, outputs]``); all <= 0: inside."""
        return np.asarray(y, np.float64) @ self.A.T - self.b

    def contains(self, y):
        return bool(np.all(self.slack(y) <= 0))

    def __repr__(self):
        return f"Polytope({len(self.b)} rows)"


class Case:
    """One input box and the polytopes of the unsafe output set for inputs in it."""

    def __init__(self, lower, upper, polytopes):
        self.lower, self.upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        self.polytopes = list(polytopes)

    def __repr__(self):
        return f"Case(box of {self.lower.size} inputs, {len(self.polytopes)} polytopes)"


class VnnLibProperty:
    """A parsed VNN-LIB file (see the module docstring).

    Attributes:
      path: the file read.
      num_inputs, num_outputs: how many ``X_i`` and ``Y_j`` it declares.
      cases: list of ``Case`` (input box + union of unsafe polytopes).
    """

    def __init__(self, path, num_inputs, num_outputs, cases):
        self.path, self.num_inputs, self.num_outputs = path, num_inputs, num_outputs
        self.cases = cases

    @property
    def input_boxes(self):
        """``[(lower, upper), ...]``, one per case."""
        return [(case.lower, case.upper) for case in self.cases]

    @property
    def unsafe(self):
        """Every polytope of every case (the unsafe set when there is one input box)."""
        return [polytope for case in self.cases for polytope in case.polytopes]

    def is_counterexample(self, x, y):
        """Whether input ``x`` with output ``y`` lies in the unsafe set."""
        return any(
            np.all(x >= case.lower)
            and np.all(x <= case.upper)
            and any(p.contains(y) for p in case.polytopes)
            for case in self.cases
        )

    def __repr__(self):
        return (
            f"VnnLibProperty({self.path!r}, {self.num_inputs} inputs, {self.num_outputs} "
            f"outputs, {len(self.cases)} cases)"
        )


def tokenize(text):
    """``Token``s (parentheses and atoms) with their line numbers; ``;`` starts a comment."""
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split(";", 1)[0]
        for text_ in code.replace("(", " ( ").replace(")", " ) ").split():
            tokens.append(Token(text_, number))
    return tokens


def parse_expressions(tokens, path):
    """Nested lists of tokens (``_Expression``), one per top-level s-expression."""
    stack = [([], None)]
    for token in tokens:
        if token == "(":
            stack.append(([], token))
        elif token == ")":
            if len(stack) == 1:
                raise _error(path, token, "unbalanced ')'")
            items, opening = stack.pop()
            stack[-1][0].append(_Expression(items, opening.line))
        else:
            stack[-1][0].append(token)
    if len(stack) != 1:
        raise _error(path, stack[-1][1], "this '(' is never closed")
    for item in stack[0][0]:
        if not isinstance(item, _Expression):
            raise _error(
                path,
                item,
                "a bare token at the top level; expected (declare-const ...) or (assert ...)",
            )
    return stack[0][0]


class _Expression(list):
    """An s-expression: a list of tokens and sub-expressions, with its opening line."""

    def __init__(self, items, line):
        super().__init__(items)
        self.line = line


def _error(path, token, message):
    line = getattr(token, "line", "?")
    text = token if isinstance(token, str) else "(" + " ".join(map(str, token))[:60] + ")"
    return VnnLibError(f"from_vnnlib: {path}:{line}: {message} (at {text!r}).")


class _Reader:
    """Declarations and asserts into ``Case``s; errors name the file, line and token."""

    def __init__(self, path):
        self.path, self.declared = path, {"X": set(), "Y": set()}

    def read(self, expressions):
        terms = [[[]]]  # DNF of each assert: a list of terms, each a list of atoms
        for expression in expressions:
            head = expression[0] if expression else None
            if head == "declare-const":
                self._declare(expression)
            elif head == "assert" and len(expression) == 2:
                terms.append(self._dnf(expression[1]))
            else:
                raise _error(
                    self.path,
                    head or expression,
                    "expected (declare-const NAME Real) or (assert EXPRESSION)",
                )
        sizes = self._sizes()
        return sizes, self._cases(self._expand(terms), *sizes)

    def _declare(self, expression):
        if len(expression) != 3 or not isinstance(expression[1], Token):
            raise _error(self.path, expression, "expected (declare-const NAME Real)")
        match = _VARIABLE.match(expression[1])
        if match is None or expression[2] != "Real":
            raise _error(
                self.path,
                expression[1],
                "only Real constants named X_i (inputs) or Y_j (outputs) are supported",
            )
        self.declared[match.group(1)].add(int(match.group(2)))

    def _sizes(self):
        for kind, indices in self.declared.items():
            if indices != set(range(len(indices))) or not indices:
                raise VnnLibError(
                    f"from_vnnlib: {self.path}: the {kind} variables must be "
                    f"{kind}_0 ... {kind}_n-1 with none missing; got "
                    f"{sorted(indices)[:10]}."
                )
        return len(self.declared["X"]), len(self.declared["Y"])

    def _dnf(self, expression):
        """Disjunctive normal form: a list of terms, each a list of ``(coefficients, constant,
        token)`` atoms meaning ``Σ coefficients·variables + constant <= 0``."""
        if isinstance(expression, Token) or not expression:
            raise _error(self.path, expression, "expected (and ...), (or ...) or a comparison")
        head = expression[0]
        if head == "and":
            return self._expand([self._dnf(part) for part in expression[1:]])
        if head == "or":
            return [term for part in expression[1:] for term in self._dnf(part)]
        if head in _COMPARISONS and len(expression) == 3:
            left, right = self._linear(expression[1]), self._linear(expression[2])
            sign = _COMPARISONS[head]
            coefficients = {
                v: sign * (left[0].get(v, 0.0) - right[0].get(v, 0.0))
                for v in set(left[0]) | set(right[0])
            }
            return [[(coefficients, sign * (left[1] - right[1]), head)]]
        raise _error(
            self.path, head, "unsupported; expected and, or, <=, >=, < or > with two operands"
        )

    def _expand(self, disjunctions):
        """The DNF of a conjunction of DNFs (every combination of one term from each)."""
        count = int(np.prod([len(d) for d in disjunctions], dtype=np.float64))
        if count > MAX_TERMS:
            raise VnnLibError(
                f"from_vnnlib: {self.path}: the property expands to {count} "
                f"conjunctions (more than {MAX_TERMS}); split it into files."
            )
        return [
            list(itertools.chain.from_iterable(combination))
            for combination in itertools.product(*disjunctions)
        ]

    def _linear(self, term):
        """``({variable: coefficient}, constant)`` of a linear term."""
        if isinstance(term, Token):
            return self._atom(term)
        if not term or not isinstance(term[0], Token):
            raise _error(
                self.path, term, "expected a number, a variable or (+ ...), (- ...), (* ...)"
            )
        parts = [self._linear(part) for part in term[1:]]
        if term[0] == "+" and parts:
            return _combine(parts, [1.0] * len(parts))
        if term[0] == "-" and parts:
            signs = [-1.0] if len(parts) == 1 else [1.0] + [-1.0] * (len(parts) - 1)
            return _combine(parts, signs)
        if term[0] == "*" and len(parts) == 2 and not (parts[0][0] and parts[1][0]):
            (scale, other) = (parts[0], parts[1]) if not parts[0][0] else (parts[1], parts[0])
            return _combine([other], [scale[1]])
        raise _error(
            self.path,
            term[0],
            "unsupported term; the supported ones are numbers, "
            "X_i, Y_j, (+ ...), (- ...) and (* constant term)",
        )

    def _atom(self, token):
        match = _VARIABLE.match(token)
        if match:
            if int(match.group(2)) not in self.declared[match.group(1)]:
                raise _error(self.path, token, "variable used before its declare-const")
            return {(match.group(1), int(match.group(2))): 1.0}, 0.0
        try:
            return {}, float(token)
        except ValueError:
            raise _error(self.path, token, "unknown name; expected a number, X_i or Y_j") from None

    def _cases(self, terms, num_inputs, num_outputs):
        """Group the expanded terms by their input box into ``Case``s."""
        cases = {}
        for term in terms:
            box, polytope = self._split_term(term, num_inputs, num_outputs)
            if box is None:
                continue  # an always-false constant comparison or an empty box
            key = (tuple(box[0]), tuple(box[1]))
            cases.setdefault(key, Case(*box, [])).polytopes.append(polytope)
        return list(cases.values())

    def _split_term(self, term, num_inputs, num_outputs):
        """``((lower, upper), Polytope)`` of one conjunction; ``(None, None)`` if empty."""
        lower, upper = np.full(num_inputs, -np.inf), np.full(num_inputs, np.inf)
        rows, rhs = [], []
        for coefficients, constant, token in term:
            coefficients = {v: c for v, c in coefficients.items() if c != 0}
            kinds = {kind for kind, _ in coefficients}
            if not kinds:
                if constant > 0:
                    return None, None
            elif kinds == {"Y"}:
                row = np.zeros(num_outputs)
                for (_, j), c in coefficients.items():
                    row[j] = c
                rows.append(row)
                rhs.append(0.0 - constant)
            elif kinds == {"X"} and len(coefficients) == 1:
                (((_, i), c),) = coefficients.items()
                if c > 0:
                    upper[i] = min(upper[i], -constant / c)
                else:
                    lower[i] = max(lower[i], -constant / c)
            else:
                raise _error(
                    self.path,
                    token,
                    "a constraint over several inputs, or over "
                    "inputs and outputs together, is unsupported; inputs must be "
                    "bounded one at a time",
                )
        return self._finite_box(lower, upper), Polytope(np.reshape(rows, (-1, num_outputs)), rhs)

    def _finite_box(self, lower, upper):
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            missing = int(np.argmax(~(np.isfinite(lower) & np.isfinite(upper))))
            raise VnnLibError(
                f"from_vnnlib: {self.path}: input X_{missing} is not bounded "
                "from both sides; every input needs (<= X_i c) and (>= X_i c)."
            )
        return None if np.any(lower > upper) else (lower, upper)


def _combine(parts, scales):
    coefficients, constant = {}, 0.0
    for (part_coefficients, part_constant), scale in zip(parts, scales):
        for variable, value in part_coefficients.items():
            coefficients[variable] = coefficients.get(variable, 0.0) + scale * value
        constant += scale * part_constant
    return coefficients, constant


def from_vnnlib(path):
    """Read a VNN-LIB property (see the module docstring for the subset and the semantics).

    Args:
      path: the ``.vnnlib`` file (plain text).

    Returns:
      A ``VnnLibProperty``: ``.cases`` (each an input box ``lower``/``upper``
      and a list of unsafe ``Polytope``s ``{y: A·y <= b}``), ``.input_boxes``,
      ``.unsafe``, ``.num_inputs``, ``.num_outputs``.

    Raises:
      ValueError (``VnnLibError``): the file cannot be read, or uses a
        construct outside the subset; the message names the line and token.
    """
    path = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise VnnLibError(f"from_vnnlib: cannot read {path!r}: {error}.") from error
    reader = _Reader(path)
    (num_inputs, num_outputs), cases = reader.read(parse_expressions(tokenize(text), path))
    return VnnLibProperty(path, num_inputs, num_outputs, cases)
