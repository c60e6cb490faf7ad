"""This deployment's assistants: `<name>.json` files and the modules whose `@tool` functions
they name. The build packages the folder with the functions; see the README's "Add your own
assistant and tool"."""
