from guard.cli.main import main

raise SystemExit(main())
