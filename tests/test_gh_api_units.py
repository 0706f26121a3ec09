"""The pure parts of github-p2p's ``gh api``: fields, requests, paging, Go printing, the ASCII
sanitizer and the template subset (expected values follow gh 2.23 and Go's formatting)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from github_p2p.cli.gh.apiargs import ApiUsageError, build_params, parse_api_args
from github_p2p.cli.gh.apicall import add_per_page, add_query, find_end_cursor, first_call
from github_p2p.cli.gh.apirun import graphql_url
from github_p2p.cli.gh.gofmt import go_json, go_sprint, go_value, json_scalar
from github_p2p.cli.gh.gotemplate import GoTemplate, TemplateError, TemplateUnsupported
from github_p2p.cli.gh.gotemplate_parse import TemplateSyntaxError
from github_p2p.cli.gh.gotext import TablePrinter, time_ago, time_format, truncate
from github_p2p.cli.gh.output import color_json, error_message, format_headers, sanitize_ascii
from github_p2p.errors import ConfigError


def args(*argv: str) -> Any:
    parsed = parse_api_args(list(argv))
    assert parsed is not None
    return parsed


def params(*argv: str, files: dict[str, bytes] | None = None) -> dict[str, Any]:
    return build_params(args("x", *argv), lambda name: {"owner": "o", "repo": "r"}.get(name),
                        lambda name: (files or {})[name])


def test_fields_build_gh_parameter_trees() -> None:
    assert params("-f", "a=1", "-F", "b=1", "-F", "c=true", "-F", "d=null", "-F", "e=+7",
                  "-F", "f=1.5", "-F", "g={owner}/{repo}", "-f", "h={owner}") == {
        "a": "1", "b": 1, "c": True, "d": None, "e": 7, "f": "1.5", "g": "o/r",
        "h": "{owner}"}
    assert params("-f", "x[y]=1", "-f", "x[z][]=2", "-f", "x[z][]=3", "-F", "l[]",
                  "-f", "o[][n]=a", "-f", "o[][m]=b", "-f", "o[][n]=c") == {
        "x": {"y": "1", "z": ["2", "3"]}, "l": [], "o": [{"n": "a", "m": "b"}, {"n": "c"}]}
    assert params("-F", "body=@f.txt", files={"f.txt": b"from a file"}) == {
        "body": "from a file"}
    assert params("-F", "big=99999999999999999999") == {"big": "99999999999999999999"}
    for bad, message in ((("-f", "novalue"), "invalid key"), (("-f", "k[x]"), "requires a value"),
                         (("-f", "a=1", "-f", "a[b]=2"), "expected map")):
        with pytest.raises(ApiUsageError, match=message):
            params(*bad)
    with pytest.raises(ConfigError, match="branch"):
        params("-F", "b={branch}")


def test_usage_errors_like_gh() -> None:
    assert parse_api_args(["x", "--frobnicate"]) is None
    for argv, message in ((["x", "--paginate", "-X", "POST"], "--paginate"),
                          (["x", "--paginate", "--input", "f"], "--input"),
                          (["x", "--jq", ".", "-t", "{{.}}"], "only one of"),
                          (["a", "b"], "accepts 1 arg")):
        with pytest.raises(ApiUsageError, match=message):
            parse_api_args(argv)


def test_requests_like_gh() -> None:
    call = first_call(args("repos/o/r/issues", "-f", "q=a b&c", "-F", "n=2", "-X", "GET"),
                      "repos/o/r/issues", {"q": "a b&c", "n": 2})
    assert (call.method, call.target, call.body) == ("GET", "repos/o/r/issues?n=2&q=a+b%26c",
                                                      None)
    post = first_call(args("x", "-f", "t=<b>"), "x", {"t": "<b>", "a": [1]})
    assert post.method == "POST" and post.body == b'{"a":[1],"t":"\\u003cb\\u003e"}'
    assert ("Content-Type", "application/json; charset=utf-8") in post.headers
    graphql = first_call(args("graphql", "-f", "query=q", "-F", "n=1"), "graphql",
                         {"query": "q", "operationName": "Q", "n": 1})
    assert json.loads(graphql.body or b"") == {"operationName": "Q", "query": "q",
                                               "variables": {"n": 1}}
    previews = first_call(args("x", "-p", "a,b", "-H", "X-A:  1 "), "x", {})
    assert previews.headers == (("X-A", "1"), ("Accept", "application/vnd.github.a-preview+json,"
                                                         " application/vnd.github.b-preview"))
    assert add_per_page("p?x=1", 100, {}) == "p?x=1&per_page=100"
    assert add_per_page("p?per_page=5", 100, {}) == "p?per_page=5"
    assert add_query("p", {"k": None, "b": False}) == "p?b=false&k="
    with pytest.raises(ApiUsageError):
        add_query("p", {"k": {"nested": 1}})
    assert graphql_url("https://ghe.example/api/v3") == "https://ghe.example/api/graphql"
    assert graphql_url("https://api.github.com/") == "https://api.github.com/graphql"


def test_end_cursor_follows_gh_token_scan() -> None:
    page = {"data": {"r": {"x": {"nodes": [{"pageInfo": "not this"}],
                                 "pageInfo": {"hasNextPage": True, "endCursor": "C1"}}}}}
    assert find_end_cursor(json.dumps(page).encode()) == "C1"
    assert find_end_cursor(b'{"pageInfo":{"endCursor":"C","hasNextPage":false}}') == ""
    assert find_end_cursor(b"not json") == ""


@pytest.mark.parametrize(("value", "text"), [
    (45.0, "45"), (1296269.0, "1.296269e+06"), (999999.0, "999999"), (1.5, "1.5"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (1e21, "1e+21"), (-2.5e-7, "-2.5e-07"),
    (0.0, "0"), (123456789.0, "1.23456789e+08")])
def test_go_prints_floats_with_percent_v(value: float, text: str) -> None:
    assert go_value(value) == text


def test_go_json_and_scalars() -> None:
    assert go_json({"b": [1.0, 1e21, 1e-7, 0.5], "a": "<é>\u2028\x01"}) == (
        '{"a":"\\u003cé\\u003e\\u2028\\u0001","b":[1,1e+21,1e-7,0.5]}')
    assert [json_scalar(v) for v in (None, True, 3.0, 2.345, "s", [1])] == [
        "", "true", "3", "2.35", "s", None]
    assert go_sprint({"b": None, "a": [1.0, "x"]}) == "map[a:[1 x] b:<nil>]"


def test_output_helpers_like_gh() -> None:
    assert sanitize_ascii(b'{"a":"x\\u001b[31my\\u009bz\\\\u0001q\\u00e9"}') == (
        b'{"a":"x^[[31my\\\\233z\\\\^Aq\\u00e9"}')
    assert sanitize_ascii(b'"\\u001b"') == b'"^["'
    assert format_headers(404, {"x-github-request-id": "1", "content-type": "t"}) == (
        b"HTTP/1.1 404 Not Found\nContent-Type: t\r\nX-Github-Request-Id: 1\r\n\r\n")
    assert error_message(b'{"message":"Not Found"}', 404) == "Not Found (HTTP 404)"
    assert error_message(b'{"errors":[{"message":"a"},"b"]}', 200) == "a\nb"
    assert error_message(b'{"errors":"bad","message":"m"}', 422) == "bad (m)"
    assert error_message(b'{"data":{}}', 200) == ""
    assert color_json(b'{"a":[1,null],"b":{}}') == (
        b'\x1b[1;38m{\x1b[m\n  \x1b[1;34m"a"\x1b[m\x1b[1;38m:\x1b[m \x1b[1;38m[\x1b[m\n'
        b'    1\x1b[1;38m,\x1b[m\n    \x1b[36mnull\x1b[m\n  \x1b[1;38m]\x1b[m\x1b[1;38m,\x1b[m\n'
        b'  \x1b[1;34m"b"\x1b[m\x1b[1;38m:\x1b[m \x1b[1;38m{\x1b[m\x1b[1;38m}\x1b[m\n'
        b'\x1b[1;38m}\x1b[m\n')


def render(source: str, data: Any, now: float = 0.0) -> str:
    template = GoTemplate(source, now=now)
    return template.execute(data) + template.flush()


def test_templates_like_go() -> None:
    data = json.loads('{"n":3,"s":"x","l":[{"k":"a"},{"k":"b"}],"z":null,"m":{"b":1,"a":2}}',
                      parse_int=float)
    assert render("{{.n}} {{.z}} {{.missing}} {{.missing.deeper}} {{.m}}", data) == (
        "3 <no value> <no value> <no value> map[a:2 b:1]")
    assert render('{{range $i, $e := .l}}{{$i}}={{$e.k}};{{else}}none{{end}}', data) == "0=a;1=b;"
    assert render("{{range .missing}}x{{else}}none{{end}}", data) == "none"
    assert render("{{range $k, $v := .m}}{{$k}}{{$v}}{{end}}", data) == "a2b1"
    assert render('{{with .s}}<{{.}}>{{end}}{{with .z}}no{{else}}nil{{end}}', data) == "<x>nil"
    assert render('{{if and .n (not .z)}}yes{{end}} {{or .z .s}} {{len .l}}', data) == "yes x 2"
    assert render('{{$x := "a"}}{{$x = "b"}}{{$x}} {{index .l 1 | printf "%v"}}', data) == (
        "b map[k:b]")
    assert render('{{- " a " -}} {{/* note */}}  {{ print 1 2 "s" 3 }}', data) == " a   1 2s3"
    assert render('{{range .l}}{{if eq .k "b"}}{{break}}{{end}}{{.k}}{{end}}', data) == "a"
    assert render('{{printf "%d|%5s|%-3s|%q|%.1f" .n "ab" "c" "q" 2.25}}', data) == (
        '%!d(float64=3)|   ab|c  |"q"|2.2')
    assert render('{{"a\\tb" | urlquery}} {{html "<a>"}}', data) == "a%09b &lt;a&gt;"
    assert render('{{.l | pluck "k" | join "," | color "green+b"}}', data) == (
        "\x1b[1;32ma,b\x1b[0m")
    assert render('{{hyperlink "https://x" ""}}', data) == "\x1b]8;;https://x\x1b\\https://x\x1b]8;;\x1b\\"
    cases: list[tuple[str, type[Exception]]] = [
        ("{{.s.x}}", TemplateError), ("{{.z.x}}", TemplateError),
        ("{{index .l 1.0}}", TemplateError), ("{{eq .n 3}}", TemplateError),
        ("{{range .n}}{{end}}", TemplateError), ("{{nosuch 1}}", TemplateUnsupported),
        ('{{template "x"}}', TemplateUnsupported), ("{{if}}", TemplateSyntaxError),
        ("{{end}}", TemplateSyntaxError), ("{{.a", TemplateSyntaxError)]
    for source, error in cases:
        with pytest.raises(error):
            render(source, data)


def test_text_helpers_like_go_gh() -> None:
    assert truncate(8, "Simulated repository") == "Simul..."
    assert truncate(3, "abcdef") == "abc" and truncate(10, "short") == "short"
    assert truncate(5, "日本語です") == "日..." and truncate(6, "日本語です") == "日... "
    table = TablePrinter(30)
    table.add_row(["1", "a long title that will not fit at all", "x"])
    table.add_row(["22", "short", "yy"])
    assert table.render() == ("1   a long title that w...  x\n"
                              "22  short                   yy\n")
    assert time_format("2006-01-02 15:04:05 Mon Jan _2 3PM -0700 Z07:00 .000",
                       "2024-03-05T07:08:09Z") == (
        "2024-03-05 07:08:09 Tue Mar  5 7AM +0000 Z .000")
    assert time_ago(1_700_000_000 + 2 * 86400, "2023-11-14T22:13:20Z") == "2 days ago"
