"""`python -m vid2vid ...` is the same as the `vid2vid` console script."""

from vid2vid.cli import main

if __name__ == "__main__":
    main()
