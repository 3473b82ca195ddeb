from guard.cli.launch import main

raise SystemExit(main())
