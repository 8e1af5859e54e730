"""Writes the .npy fixtures npy_test.cpp reads, with numpy's own writer. Regenerate: /usr/bin/python3 make_fixtures.py"""
import numpy as np

f4 = np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5) - np.float32(1.25)
np.save("f4_2x3.npy", f4)
np.save("i4_5.npy", np.array([-2, -1, 0, 7, 2147483647], dtype=np.int32))
np.save("bool_4.npy", np.array([True, False, False, True]))
np.save("u1_2x2.npy", np.array([[0, 255], [1, 128]], dtype=np.uint8))
np.save("f4_big_endian_2x3.npy", f4.astype(">f4"))
np.save("f8_3.npy", np.array([1.0, 2.0, 3.0]))
np.save("i8_3.npy", np.array([1, 2, 3], dtype=np.int64))
np.save("f4_fortran_2x3.npy", np.asfortranarray(f4))
np.save("f4_empty_0x4.npy", np.zeros((0, 4), dtype=np.float32))
with open("f4_v2_2x3.npy", "wb") as f:
    np.lib.format.write_array(f, f4, version=(2, 0))
