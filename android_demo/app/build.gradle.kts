// The sources stay compilable by the offline check (tools/build_offline.sh): Kotlin 1.3
// syntax, android-23 framework APIs only, no AndroidX. Keep it that way when editing.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.gsmobile.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.gsmobile.demo"
        minSdk = 23
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug") // a demo: installable without a release key
        }
    }

    // The model is memory-mapped from the APK: it must be stored uncompressed.
    androidResources {
        noCompress += "tflite"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    // LiteRT (formerly TensorFlow Lite): org.tensorflow.lite.Interpreter, XNNPACK built in.
    // 1.4.0: 16 KB page-size ready; needs litert-api beside it (google-ai-edge/LiteRT#2752).
    // 2.x may not ship org.tensorflow.lite.Interpreter (google-ai-edge/LiteRT#4775): stay on 1.x
    // or use org.tensorflow:tensorflow-lite:2.16.1 instead.
    implementation("com.google.ai.edge.litert:litert:1.4.0")
    implementation("com.google.ai.edge.litert:litert-api:1.4.0")
}
