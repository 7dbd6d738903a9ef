from spark_ls.cli import main

raise SystemExit(main())
