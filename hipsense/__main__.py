from hipsense.cli import main

main()
