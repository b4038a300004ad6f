"""The plain progress lines (no terminal): throughput and ETA of a resumed run."""

import json

from hashjax.train import metric_writer


def test_resumed_run_reports_the_rate_and_eta_of_the_steps_it_runs(tmp_path, monkeypatch, capsys):
  clock = [1000.0]
  monkeypatch.setattr(metric_writer.time, 'perf_counter', lambda: clock[0])
  writer = metric_writer.MetricWriter(str(tmp_path), total_steps=100, batch_size=10)
  writer.message('before the restore')  # the bar does not exist yet: a plain print
  writer.start(50)  # restored at step 50
  clock[0] += 10.0
  writer.write(55, {'loss': 0.5})
  writer.progress(55, 0.5)  # 5 steps of 10 images in 10 s; 45 steps left at 0.5 steps/s
  clock[0] += 10.0
  writer.progress(60, 0.25)
  writer.close()
  lines = capsys.readouterr().out.splitlines()
  assert lines == [
    'before the restore',
    'step 55/100 (55%) img/s=5 loss=0.5000 eta 1.5 min',
    'step 60/100 (60%) img/s=5 loss=0.2500 eta 1.3 min',
  ]
  logged = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['step'], r['loss']) for r in logged] == [(55, 0.5)]
