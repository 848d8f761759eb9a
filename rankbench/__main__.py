from rankbench.cli import main

raise SystemExit(main())
