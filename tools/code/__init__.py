"""Run Python in a bubblewrap sandbox: the sandbox, the kernel inside it, and the interpreter tool."""
