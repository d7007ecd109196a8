from studio.trainer.cli import main

raise SystemExit(main())
