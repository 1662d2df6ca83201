"""Message helpers shared by the library and the command line; imports nothing heavy.

The CLI imports this module before deciding whether it needs TensorFlow (so that
``tf1norm --help`` stays fast); keep it free of TensorFlow and NumPy.
"""


def first_line(error):
    """The first non-empty line of ``str(error)``, or the error's type name if it has no text.

    TensorFlow's errors carry multi-line tracebacks of the graph; a one-line message
    names what failed and keeps the rest of the sentence readable.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
