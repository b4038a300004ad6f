"""Downloads and converts a tensorflow-datasets dataset once (`python -m hashjax.prepare_data`'s library)."""

from hashjax.data import sources


def prepare(name: str, data_dir: str | None = None) -> str:
  if name not in sources.TFDS_NUM_CLASSES:
    raise ValueError(
      f'{name!r} is not a tensorflow-datasets source here; valid names: {", ".join(sorted(sources.TFDS_NUM_CLASSES))}'
    )
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
  return builder.data_dir
