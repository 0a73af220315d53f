import sys

from sentra_lang.cli import main

sys.exit(main())
