"""Run Python in a bubblewrap sandbox: the sandbox, the kernel inside it, sessions, and the interpreter tool."""
