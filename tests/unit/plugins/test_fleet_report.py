"""The fleet summary filter and the HTML dashboard template, rendered with Jinja2 on synthetic
reports (the browser test renders a real fleet's)."""

import re
from html.parser import HTMLParser

from ansible_collections.meshfleet.istio.plugins.filter.fleet_report import fleet_summary
from tests.unit.plugins.fleet_data import NEW, OLD, cluster_mesh, render_dashboard, synthetic_report


def test_the_summary_counts_clusters_per_revision_and_problems():
    summary = fleet_summary(synthetic_report(32))
    assert summary["clusters"] == 32
    assert summary["unreachable"] == ["cluster32"]
    assert summary["with_problems"] == ["cluster5", "cluster32"]
    by_revision = {r["revision"]: r for r in summary["revisions"]}
    assert [r["revision"] for r in summary["revisions"]] == [OLD, NEW]
    assert len(by_revision[NEW]["clusters"]) == 10  # 8 passed, the failed one, the one on it
    assert len(by_revision[OLD]["clusters"]) == 31 - 8
    assert len(by_revision[NEW]["default_on"]) == 8
    assert by_revision[NEW]["version"] == "1.31.0"


def test_the_summary_shows_the_progress_of_the_last_upgrade():
    upgrade = fleet_summary(synthetic_report(32))["upgrade"]
    assert upgrade["revision"] == NEW and upgrade["total"] == 32 and upgrade["done"] == 8
    assert upgrade["phases"]["failed"] == ["cluster9"]
    assert upgrade["phases"]["started"] == ["cluster10"]
    assert len(upgrade["not_reached"]) == 32 - 10
    assert sum(len(step["clusters"]) for step in upgrade["steps"]) == 32


def test_clusters_sort_by_number_and_no_record_means_no_upgrade():
    report = {"cluster10": cluster_mesh(10, [OLD], OLD), "cluster9": cluster_mesh(9, [OLD], OLD)}
    summary = fleet_summary(report)
    assert summary["names"] == ["cluster9", "cluster10"]
    assert summary["upgrade"] == {}
    assert "no upgrade recorded" in render_dashboard(report)


class Page(HTMLParser):
    """Rows, classes, elements and text of a rendered page."""

    def __init__(self, html):
        super().__init__()
        self.rows, self.tags, self.text = {}, [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and attrs.get("id"):
            self.rows[attrs["id"]] = attrs.get("class") or ""

    def handle_data(self, data):
        self.text.append(data)


def test_the_dashboard_has_a_row_and_a_timeline_per_cluster_with_problems_highlighted():
    page = Page(render_dashboard(synthetic_report(32)))
    clusters = [f"cluster{i}" for i in range(1, 33)]
    assert [r for r in page.rows if r.startswith("cluster-")] == [f"cluster-{c}" for c in clusters]
    assert sorted(r for r in page.rows if r.startswith("timeline-")) == sorted(f"timeline-{c}" for c in clusters)
    problem_rows = sorted(r for r, classes in page.rows.items() if "problem" in classes.split())
    assert problem_rows == ["cluster-cluster32", "cluster-cluster5"]


def test_the_dashboard_shows_each_clusters_state_and_timeline():
    html = render_dashboard(synthetic_report(32))
    row = re.search(r'<tr class="ok" id="cluster-cluster9">(.*?)</tr>', html, re.S).group(1)
    assert "1-30-dev (1.30-dev)" in row and "1-31-0 (1.31.0)" in row
    assert "default → 1-30-dev" in row and "istio-ingressgateway → <b>1-30-dev</b>" in row
    assert "1-30-dev: 19" in row
    timeline = re.search(r'<tr id="timeline-cluster9">(.*?)</tr>', html, re.S).group(1)
    assert ">failed 1-31-0<" in timeline
    assert timeline.index("started 1-31-0</span>") < timeline.rindex("failed 1-31-0</span>")
    assert "20261129T120000Z-upgrade-cluster9-4009" in timeline
    locked = re.search(r'id="cluster-cluster10">(.*?)</tr>', html, re.S).group(1)
    assert "20261129T120000Z-upgrade-cluster10-1" in locked and ">held<" in locked
    assert "8 of 32 passed" in html


def test_every_value_is_escaped():
    report = synthetic_report(3)
    report["cluster1"]["problems"] = ['<script>alert("x")</script> & more']
    report["cluster2"]["tags"]["<b>"] = "x&y"
    html = render_dashboard(report)
    assert "<script>" not in html and "<b>&lt;" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt; → x&amp;y" in html
    assert "&lt;dial tcp 127.0.0.1:443&gt;" in html  # the unreachable cluster's error


def test_the_dashboard_is_self_contained():
    page = Page(render_dashboard(synthetic_report(32)))
    tags = {element[0] for element in page.tags}
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    assert "style" in tags
    for element in page.tags:
        for name, value in element[1].items():
            assert not re.match(r"\s*(https?:|//|url\()", value or ""), (name, value)
    assert "@import" not in render_dashboard(synthetic_report(2))
