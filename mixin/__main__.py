"""`python -m mixin`: regenerate every generated file from mixin/config.py.

Generated files are committed; tests/config fails when they drift from what this writes.
"""
import importlib.util

from mixin.rules import generate_rules


def main():
    print(f"wrote {generate_rules()}")

    # --- Dashboards: mixin/dashboards/ (written separately) provides generate(). ---
    if importlib.util.find_spec("mixin.dashboards") is not None:
        from mixin import dashboards

        for path in dashboards.generate() or []:
            print(f"wrote {path}")
    # --- end dashboards ---

    # The Helm chart's embedded copies (charts/celery-observability/files/).
    from mixin import chart

    for path in chart.generate():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
