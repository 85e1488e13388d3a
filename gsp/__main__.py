from gsp.cli import main

raise SystemExit(main())
