from edge_cli.app import main

main()
