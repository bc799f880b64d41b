"""image_folder_tfds: your own images as a TFDS dataset.

Importing this package registers the `my_images` builder with TFDS:

    tfds build my_images --imports image_folder_tfds --manual_dir DIR
"""

from image_folder_tfds.builder import MyImages
from image_folder_tfds.config import MyImagesConfig

__all__ = ["MyImages", "MyImagesConfig"]
__version__ = "0.1.0"
