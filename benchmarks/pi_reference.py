"""Published Raspberry Pi figures the performance suite compares this machine with.

benchmarks/run_perf.py measures the reference models here; benchmarks/perf_report.py turns the
ratio into a Pi estimate. Both read the figures from this one place.
"""

# Published Raspberry Pi 4 figures for the reference models (TFLite C++, 4 threads, 64-bit OS,
# Pi 4 overclocked to 1950 MHz): Qengineering/TensorFlow_Lite_Classification_RPi_64-bits README,
# "Mobile_V1 Lite 38.5 FPS, Mobile_V2 Lite 45.5 FPS" (mobilenet_v{1,2}_1.0_224_quant.tflite).
PI4_PUBLISHED_MS = {"mobilenet_v1": 1000 / 38.5, "mobilenet_v2": 1000 / 45.5}
# Raspberry Pi 5 launch announcement (Raspberry Pi Ltd, Sept 2023): "2-3x" the CPU performance of a Pi 4.
PI5_VS_PI4 = (2.0, 3.0)

PI4_SOURCE = (
    "Qengineering, TensorFlow_Lite_Classification_RPi_64-bits (GitHub README): MobileNet V1 quant 38.5 FPS, "
    "V2 quant 45.5 FPS, TFLite C++, 4 threads, Raspberry Pi 4 at 1950 MHz, 64-bit OS"
)
PI5_SOURCE = "Raspberry Pi 5 launch announcement (Raspberry Pi Ltd, 2023): 2-3x the CPU performance of Raspberry Pi 4"
