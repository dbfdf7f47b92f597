"""`liveedit resolve install | uninstall | check`: the DaVinci Resolve menu scripts."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("resolve", help="install the DaVinci Resolve scripts (Workspace > Scripts > LiveEdit)",
                       description="Put the LiveEdit scripts into DaVinci Resolve's script folder and check what "
                       "Resolve needs to run them (Studio edition, a Python 3 Resolve finds, the sidecar).")
    actions = p.add_subparsers(dest="resolve_action", metavar="ACTION", required=True)
    for name, text in (("install", "install the scripts and run the self-test"),
                       ("uninstall", "remove the scripts (nothing else)"),
                       ("check", "run the self-test only")):
        a = actions.add_parser(name, help=text, description=text)
        a.add_argument("--all-users", action="store_true", help="use the all-users script folder (needs admin rights)")
        a.add_argument("--category", default="Utility", choices=["Utility", "Edit"],
                       help="script menu: Utility (every page, default) or Edit (Edit page only)")
        a.set_defaults(func=run)


def run(args) -> int:
    from liveedit.clients.resolve import install as setup

    machine = setup.Machine()
    start = setup.DEFAULT_START_COMMAND  # `liveedit serve` starts the HTTP bridge the scripts use
    if args.resolve_action == "uninstall":
        removed = setup.uninstall(machine, all_users=args.all_users, category=args.category)
        print("\n".join(f"removed {p}" for p in removed) or "nothing of LiveEdit's was installed there")
        return 0
    if args.resolve_action == "install":
        written = setup.install(machine, all_users=args.all_users, category=args.category, start_command=start)
        folder = setup.menu_folder(machine, args.all_users, args.category)
        print(f"installed {len(written)} files; menu scripts in {folder}")
        print(f"sidecar address and token are read from {machine.config_dir()} (bridge.json, token)")
    checks = setup.self_test(machine, all_users=args.all_users, category=args.category, start_command=start)
    print("self-test:")
    for check in checks:
        print("  " + check.line())
    missing = [c.name for c in checks if not c.ok]
    if missing and args.resolve_action == "install":
        print(f"the scripts are installed, but {len(missing)} prerequisite(s) are missing ({', '.join(missing)}); "
              "fix them as said above, then run `liveedit resolve check`")
    return 1 if missing else 0
