"""The UIManager windows (Fusion's Qt wrapper inside Resolve). Deliberately thin: they
collect options and show text; actions.py does the work. Not exercised by the fake
(UIManager is undocumented in fusionscript-stubs); see docs/resolve.md."""

from __future__ import annotations

from .actions import EditOptions

RANGE_LABELS = [("clip", "Whole clip"), ("inout", "Timeline in/out"), ("markers", "Marked regions")]
PLACEMENT_LABELS = [("track", "Track above (LiveEdit)"), ("take", "New take of the clip")]
MARKER_COLORS = ["Green", "Blue", "Cyan", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky",
                 "Mint", "Lemon", "Sand", "Cocoa", "Cream"]


def _run_modal(fusion, bmd, spec, on_ok, fill=None):
    """Show a window built by ``spec(ui)``; OK runs ``on_ok(items)``; returns its result or None."""
    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)
    window = dispatcher.AddWindow({"ID": "LiveEditWin", "WindowTitle": "LiveEdit", "Geometry": [200, 200, 460, 280]},
                                  spec(ui))
    if fill is not None:
        fill(window.GetItems())
    result = {}

    def ok(_event):
        result["value"] = on_ok(window.GetItems())
        dispatcher.ExitLoop()

    def cancel(_event):
        dispatcher.ExitLoop()

    window.On.OK.Clicked = ok
    window.On.Cancel.Clicked = cancel
    window.On.LiveEditWin.Close = cancel
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
    return result.get("value")


def _buttons(ui):
    return ui.HGroup([ui.HGap(), ui.Button({"ID": "Cancel", "Text": "Cancel"}), ui.Button({"ID": "OK", "Text": "OK"})])


def _fill(items, ident, labels, default_index=0):
    for label in labels:
        items[ident].AddItem(label)
    items[ident].CurrentIndex = default_index


def ask_edit_options(fusion, bmd, defaults: dict, *, title: str = "Edit selection") -> EditOptions | None:
    def spec(ui):
        return ui.VGroup([
            ui.Label({"Text": f"LiveEdit: {title}", "Weight": 0}),
            ui.HGroup([ui.Label({"Text": "Instruction"}), ui.LineEdit({"ID": "Instruction", "PlaceholderText": "make the fur snowy white"})]),
            ui.HGroup([ui.Label({"Text": "Seed"}), ui.SpinBox({"ID": "Seed", "Minimum": 0, "Maximum": 2**31 - 1, "Value": int(defaults.get("seed", 0))}),
                       ui.Label({"Text": "Handles"}), ui.SpinBox({"ID": "Handles", "Minimum": 0, "Maximum": 240, "Value": int(defaults.get("handles", 12))})]),
            ui.HGroup([ui.Label({"Text": "Range"}), ui.ComboBox({"ID": "Range"}), ui.Label({"Text": "Marker colour"}), ui.ComboBox({"ID": "Color"})]),
            ui.HGroup([ui.Label({"Text": "Put the result"}), ui.ComboBox({"ID": "Placement"})]),
            _buttons(ui),
        ])

    def on_ok(items):
        return EditOptions(
            instruction=items["Instruction"].Text, seed=int(items["Seed"].Value), handles=int(items["Handles"].Value),
            range=RANGE_LABELS[int(items["Range"].CurrentIndex)][0],
            placement=PLACEMENT_LABELS[int(items["Placement"].CurrentIndex)][0],
            marker_color=MARKER_COLORS[int(items["Color"].CurrentIndex)],
            format=defaults.get("format", "prores"), output_dir=defaults.get("output_dir"),
        )

    def fill(items):
        _fill(items, "Range", [label for _, label in RANGE_LABELS])
        _fill(items, "Placement", [label for _, label in PLACEMENT_LABELS])
        _fill(items, "Color", MARKER_COLORS, MARKER_COLORS.index(defaults.get("marker_color", "Green")))

    return _run_modal(fusion, bmd, spec, on_ok, fill)


def ask_instruction(fusion, bmd, title: str) -> tuple[str, int] | None:
    def spec(ui):
        return ui.VGroup([
            ui.Label({"Text": f"LiveEdit: {title}", "Weight": 0}),
            ui.HGroup([ui.Label({"Text": "Instruction"}), ui.LineEdit({"ID": "Instruction"})]),
            ui.HGroup([ui.Label({"Text": "Seed"}), ui.SpinBox({"ID": "Seed", "Minimum": 0, "Maximum": 2**31 - 1})]),
            _buttons(ui),
        ])

    return _run_modal(fusion, bmd, spec, lambda items: (items["Instruction"].Text, int(items["Seed"].Value)))


def ask_marker_color(fusion, bmd, default: str = "Green") -> str | None:
    def spec(ui):
        return ui.VGroup([
            ui.Label({"Text": "LiveEdit: render every marker of this colour (instruction in the marker's note)"}),
            ui.ComboBox({"ID": "Color"}),
            _buttons(ui),
        ])

    def on_ok(items):
        return items["Color"].CurrentText or default

    return _run_modal(fusion, bmd, spec, on_ok,
                      lambda items: _fill(items, "Color", MARKER_COLORS, MARKER_COLORS.index(default)))


class ProgressWindow:
    """A non-modal window whose text we replace while polling the sidecar."""

    def __init__(self, fusion, bmd, title: str):
        ui = fusion.UIManager
        self._dispatcher = bmd.UIDispatcher(ui)
        self._window = self._dispatcher.AddWindow(
            {"ID": "LiveEditProgress", "WindowTitle": title, "Geometry": [240, 240, 520, 200]},
            ui.VGroup([ui.TextEdit({"ID": "Text", "ReadOnly": True})]))
        self._window.Show()

    def update(self, text: str) -> None:
        self._window.GetItems()["Text"].PlainText = text

    def close(self) -> None:
        self._window.Hide()


def show_message(fusion, bmd, title: str, text: str) -> None:
    def spec(ui):
        return ui.VGroup([ui.TextEdit({"ID": "Text", "ReadOnly": True, "PlainText": text}),
                          ui.HGroup([ui.HGap(), ui.Button({"ID": "OK", "Text": "OK"})])])

    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)
    window = dispatcher.AddWindow({"ID": "LiveEditWin", "WindowTitle": title, "Geometry": [220, 220, 560, 320]}, spec(ui))
    window.On.OK.Clicked = lambda _e: dispatcher.ExitLoop()
    window.On.LiveEditWin.Close = lambda _e: dispatcher.ExitLoop()
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
