"""``python -m actlab``: the same command line as ``actlab`` (for environments without the script on PATH)."""

from actlab.cli import main

if __name__ == "__main__":
    main()
