from .cli import main

if __name__ == "__main__":  # not when a training process (multiprocessing's spawn) imports it
    raise SystemExit(main())
