from wsd_llm.explain import explain, render_html


def test_html_marks_the_switch_and_dropped_tokens(tiny_pipe):
    explanation = explain(tiny_pipe, "How are you today?", gamma=0.0035, max_new_tokens=24, max_draft_tokens=24)
    assert explanation.switched
    assert [t.kept for t in explanation.tokens] == [i <= explanation.switch_index
                                                    for i in range(len(explanation.tokens))]
    assert [t.prob for t in explanation.tokens] == explanation.result.probs
    page = render_html(explanation)
    assert page.count('id="switch-marker"') == 1 and page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http" not in page.split("</head>")[1]  # self-contained


def test_no_marker_without_a_switch(tiny_pipe):
    explanation = explain(tiny_pipe, "How are you today?", gamma=1.0, max_new_tokens=24, max_draft_tokens=24)
    assert not explanation.switched and all(t.kept for t in explanation.tokens)
    assert 'id="switch-marker"' not in render_html(explanation)


def test_window_means_follow_the_rule(tiny_pipe):
    explanation = explain(tiny_pipe, "Hello!", gamma=0.0035, window=3, max_new_tokens=16, max_draft_tokens=16)
    means = [t.window_mean for t in explanation.tokens]
    assert means[:2] == [0.0, 0.0] and all(m > 0 for m in means[2:])
