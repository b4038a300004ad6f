"""benchmarks/accelerator_check.py: its --smoke run (the same script on CPU at tiny sizes) fills every
section of the table and the JSON; a failing or skipped item is a row, and the run goes on."""

import importlib.util
import json
import os
import subprocess
import sys

from tests import helpers

SCRIPT = os.path.join(helpers.ROOT, 'benchmarks', 'accelerator_check.py')


def _module():
  spec = importlib.util.spec_from_file_location('accelerator_check', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_smoke_run_fills_the_table_and_the_json(tmp_path):
  out = tmp_path / 'smoke.json'
  done = subprocess.run(
    [sys.executable, SCRIPT, '--smoke', '--out', str(out), '--workdir', str(tmp_path / 'work')],
    cwd=tmp_path,  # not the repository: the script finds its files itself
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
  doc = json.loads(out.read_text())
  assert doc['finished'] and doc['smoke']
  assert [i['item'] for i in doc['items']] == [
    'devices',
    'tests',
    'train:dsh_net',
    'train:resnet18',
    'retrieval:device',
    'retrieval:cpu',
  ]
  assert all(i['status'] == 'ok' for i in doc['items']), doc['items']
  rows = {r['key']: r for r in doc['rows']}
  assert {'devices', 'tests', 'train/dsh_net/float32', 'train/resnet18/float32'} <= set(rows)
  for row in rows.values():
    assert 'ERROR' not in (row.get('device', ''), row.get('cpu', '')), row
  assert rows['devices']['data']['default_backend'] == 'cpu'
  assert rows['tests']['data']['returncode'] == 0 and rows['tests']['data']['counts']['passed'] > 0
  for model in ('dsh_net', 'resnet18'):
    train = rows[f'train/{model}/float32']['data']
    assert train['finite'] and train['step_images_per_s'] > 0 and train['end_to_end_images_per_s'] > 0
  for case in ('stable', 'expected', 'topk', 'distmat'):
    row = rows[f'retrieval/{case}']
    assert row['data']['device']['result'] == row['data']['cpu']['result']  # CPU twice here: identical
  if os.environ.get('HASHJAX_REQUIRE_NATIVE') == '1':  # .ci/run: the CPU side is the C++ kernel
    assert rows['retrieval/stable']['data']['cpu']['impl'] == 'native'
  # One markdown table, printed last and stored in the JSON; a row per key, labelled as a smoke run.
  assert done.stdout.rstrip().endswith(doc['table'])
  assert 'SMOKE RUN on CPU' in done.stdout
  assert doc['table'].count('\n') + 1 == 2 + len(rows)
  assert 'same results on both' in doc['table']


def test_failing_and_skipped_items_are_rows(tmp_path):
  check = _module()
  a = check.parse_args(['--out', str(tmp_path / 'a.json'), '--workdir', str(tmp_path)])
  report = check.Report(a, 0.0)
  item = check.run_item(a, 'no_such_item', dict(os.environ), 60, report)
  assert item['status'] == 'exit 1'
  row = report.rows['no_such_item/failure']
  assert row['device'] == 'ERROR' and "unknown child 'no_such_item'" in row['notes']['']
  # No time left: nothing starts, every item says it was skipped, and the JSON is complete.
  assert check.main(['--budget_s', '0', '--sections', 'devices,retrieval', '--out', a.out, '--workdir', a.workdir]) == 0
  doc = json.loads(open(a.out).read())
  assert doc['finished'] and [i['status'] for i in doc['items']] == ['skipped (budget)'] * 3
  assert '| devices | devices | skipped |' in doc['table']
