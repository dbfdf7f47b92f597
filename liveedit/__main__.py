from liveedit.cli import main

raise SystemExit(main())
